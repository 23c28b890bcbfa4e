-- pandoc filter for scripts/gen_docsite.py: a link from one guide to another becomes a :ref: to that guide's
-- label on the rendered collection docs; any other relative link (a file of the repository) has no page there
-- and is kept as its text. Absolute links are kept.
local prefix = "ansible_collections.o365.smtp_oauth.docsite."
local guides = {}
for slug in string.gmatch(os.getenv("O365_DOCSITE_GUIDES") or "", "[^,]+") do
  guides[slug] = true
end

function Link(el)
  local target = el.target
  if target:match("^%a[%w+.-]*:") then
    return el
  end
  local slug = target:match("^([%w_-]+)%.md") or target:match("^([%w_-]+)%.md#")
  if slug and guides[slug] then
    return pandoc.RawInline("rst", ":ref:`" .. pandoc.utils.stringify(el.content) .. " <" .. prefix .. slug .. ">`")
  end
  return el.content
end

-- Headings get no label of their own: antsibull-docs wants every label under the collection's prefix, and the
-- guides link to each other's pages only.
function Header(el)
  el.identifier = ""
  return el
end

-- A JSON excerpt (an object's member, "..." for what is left out) is not a JSON document: shown as text, it is
-- neither validated nor lexed as JSON.
function CodeBlock(el)
  if el.classes[1] == "json" and not el.text:match("^%s*[%[{]") then
    el.classes = {"text"}
  end
  return el
end
