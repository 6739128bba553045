/**
 * Every string a spec or a results file provides (description, model names, reasons, versions) reaches reports that
 * reviewers open from pull requests. These functions make such text inert in each place it lands. Pure.
 */

const HTML_ESCAPES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text for HTML element content and quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);
}

/**
 * Text for GitHub-flavoured Markdown: one line, HTML-significant characters as entities (GitHub's sanitizer passes
 * some tags through, e.g. an `<img>` that loads a URL), the punctuation that can start emphasis, a link or an image
 * (`[`; `(` and `!` do nothing without it), code, a strikethrough or a table cell backslash-escaped (CommonMark allows
 * escaping any ASCII punctuation), and a leading
 * character that could open a heading, a list or a quote escaped too.
 */
export function escapeMarkdown(text: string): string {
  return oneLine(text)
    .replace(/[\\`*_[\]|~]/g, (c) => `\\${c}`)
    .replace(/[&<>"]/g, (c) => HTML_ESCAPES[c]!)
    .replace(/^([#+\-=]|\d+(?=[.)](?:\s|$)))/, (lead) => (/^\d/.test(lead) ? `${lead}\\` : `\\${lead}`));
}

/** For inline code spans in Markdown: backticks cannot be escaped inside one, so they are replaced. */
export function markdownCode(text: string): string {
  return `\`${oneLine(text).replace(/`/g, "'")}\``;
}

/**
 * Text inside a quoted Mermaid string (a chart title, an axis title): Mermaid's xychart grammar has no escape for `"`,
 * and `%%` starts a directive, `#` an entity, `;` may end a statement. Anything outside a small safe set becomes `_`,
 * and the length is capped, so no input can end the string or add a statement.
 */
export function mermaidText(text: string, maxChars = 60): string {
  const safe = oneLine(text).replace(/[^A-Za-z0-9 _.,=+()/×-]/g, '_');
  return safe.length > maxChars ? `${safe.slice(0, maxChars - 1)}_` : safe;
}

/** Newlines and other control characters become spaces; runs of whitespace one space. */
export function oneLine(text: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is being removed
  return text.replace(/[\u0000-\u001f\u007f\u2028\u2029]+/g, ' ').replace(/\s+/g, ' ').trim();
}
