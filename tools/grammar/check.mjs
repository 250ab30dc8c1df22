// Reads [{id, language: "logql"|"traceql", expr}] as JSON on stdin; writes [{id, errors: [offset, ...]}].
// A query is valid when Grafana's Lezer grammar parses it without an error node.
import { parser as logql } from '@grafana/lezer-logql';
import { parser as traceql } from '@grafana/lezer-traceql';

const parsers = { logql, traceql };
let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => { input += chunk; });
process.stdin.on('end', () => {
  const results = JSON.parse(input).map(({ id, language, expr }) => {
    const errors = [];
    parsers[language].parse(expr).iterate({
      enter(node) { if (node.type.isError) errors.push(node.from); },
    });
    return { id, errors };
  });
  process.stdout.write(JSON.stringify(results));
});
