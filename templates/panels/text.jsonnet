// Markdown: `content` as written in values.
local lib = import 'lib/panel.libsonnet';
function(panel) {
  type: 'text',
  title: panel.title,
  description: panel.description,
  fieldConfig: lib.unitOnly(panel),
  options: {
    code: { language: 'plaintext', showLineNumbers: false, showMiniMap: false },
    content: panel.content,
    mode: 'markdown',
  },
}
