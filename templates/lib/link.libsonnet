// Grafana's link, in the full shape its published schema asks for, written once: the frame's dashboard
// links and the panels' data links are both made here.
local base(title, tooltip, icon) = {
  title: title,
  tooltip: tooltip,
  icon: icon,
  tags: [],
  asDropdown: false,
  targetBlank: false,
  includeVars: false,
  keepTime: true,  // the incident's time range follows you from dashboard to dashboard
};
{
  // A link to a URL: a dashboard link, or a panel's data link (its title is its tooltip).
  url(title, url, tooltip=title, icon='external link'):: base(title, tooltip, icon) + { type: 'link', url: url },

  // A drop-down of the dashboards with a tag.
  dashboards(title, tag, tooltip):: base(title, tooltip, 'external link') + { type: 'dashboards', tags: [tag], asDropdown: true },
}
