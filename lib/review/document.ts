/**
 * The report as a small document tree, rendered twice: as self-contained HTML (inline CSS and SVG, no script,
 * nothing fetched) and as Markdown. Sections hold paragraphs, lists, tables, questions with their evidence,
 * collapsible details and inline SVG.
 */
export type Inline = string | { readonly code: string; readonly wild?: boolean } | { readonly strong: string } | { readonly warn: string };
export type Text = Inline | readonly Inline[];

export interface Row {
  readonly cells: readonly Text[];
  /** `data-*` attributes of the HTML row (a test finds rows by them). */
  readonly data?: Readonly<Record<string, string>>;
  readonly warn?: boolean;
}

export type Block =
  | { readonly p: Text }
  | { readonly list: readonly Text[] }
  | { readonly table: { readonly head: readonly string[]; readonly rows: readonly Row[]; readonly id?: string } }
  | { readonly svg: string; readonly caption: string }
  | { readonly details: { readonly summary: Text; readonly blocks: readonly Block[] } }
  | { readonly question: { readonly id: string; readonly q: string; readonly answer: Text; readonly evidence: readonly Block[] } };

export interface Section {
  readonly id: string;
  readonly title: string;
  readonly blocks: readonly Block[];
}

export interface ReportDocument {
  readonly title: string;
  readonly subtitle: string;
  readonly sections: readonly Section[];
}

/** Code, flagged as a wildcard when it holds `*`. */
export const code = (s: string): Inline => ({ code: s, wild: s.includes('*') });
export const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

const inlines = (t: Text): readonly Inline[] => (Array.isArray(t) ? t : [t as Inline]);

// HTML ----------------------------------------------------------------------------------------------------------

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

function htmlInline(i: Inline): string {
  if (typeof i === 'string') return esc(i);
  if ('code' in i) return i.wild ? `<code class="wild" title="wildcard">${esc(i.code)}</code>` : `<code>${esc(i.code)}</code>`;
  if ('strong' in i) return `<strong>${esc(i.strong)}</strong>`;
  return `<span class="warn">${esc(i.warn)}</span>`;
}
const htmlText = (t: Text) => inlines(t).map(htmlInline).join('');

function htmlBlock(b: Block): string {
  if ('p' in b) return `<p>${htmlText(b.p)}</p>`;
  if ('list' in b) return `<ul>${b.list.map((t) => `<li>${htmlText(t)}</li>`).join('')}</ul>`;
  if ('table' in b) {
    const rows = b.table.rows.map((r) => {
      const data = Object.entries(r.data ?? {}).map(([k, v]) => ` data-${k}="${esc(v)}"`).join('');
      return `<tr${data}${r.warn ? ' class="warn-row"' : ''}>${r.cells.map((c) => `<td>${htmlText(c)}</td>`).join('')}</tr>`;
    }).join('\n');
    return `<table${b.table.id ? ` id="${esc(b.table.id)}"` : ''}><thead><tr>${b.table.head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>\n${rows}\n</tbody></table>`;
  }
  if ('svg' in b) return `<figure>${b.svg}<figcaption>${esc(b.caption)}</figcaption></figure>`;
  if ('details' in b) return `<details><summary>${htmlText(b.details.summary)}</summary>${b.details.blocks.map(htmlBlock).join('\n')}</details>`;
  const q = b.question;
  return `<div class="question" id="${esc(q.id)}"><h3>${esc(q.q)}</h3><p class="answer">${htmlText(q.answer)}</p><div class="evidence"><h4>Evidence</h4>${q.evidence.map(htmlBlock).join('\n')}</div></div>`;
}

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2330;background:#fff}
header{background:#1d2f4f;color:#fff;padding:18px 28px}header h1{margin:0;font-size:22px}header p{margin:4px 0 0;opacity:.85}
nav{padding:8px 28px;background:#eef2f8;border-bottom:1px solid #d5dce8}nav a{margin-right:14px;color:#1d2f4f;text-decoration:none}
main{padding:8px 28px 40px;max-width:1500px}section{margin-top:26px}h2{border-bottom:2px solid #1d2f4f;padding-bottom:4px}
table{border-collapse:collapse;width:100%;margin:8px 0 14px;font-size:12.5px}th,td{border:1px solid #d5dce8;padding:4px 6px;vertical-align:top;text-align:left}
th{background:#eef2f8}tr.warn-row td{background:#fff5e0}code{font:12px ui-monospace,Menlo,Consolas,monospace;background:#f3f5f9;padding:0 3px;border-radius:3px;word-break:break-all}
code.wild{background:#ffe08a;outline:1px solid #d49a00}.warn{color:#9a3b00;font-weight:600}
.question{border:1px solid #c9d3e4;border-left:6px solid #1d2f4f;border-radius:4px;padding:8px 14px;margin:12px 0;background:#fafbfd}
.question h3{margin:4px 0}.answer{font-size:15px;font-weight:600}.evidence h4{margin:6px 0 2px;font-size:12px;text-transform:uppercase;color:#5a6475}
figure{margin:8px 0}figure svg{max-width:100%;height:auto;border:1px solid #d5dce8}figcaption{font-size:12px;color:#5a6475}
details{margin:6px 0}summary{cursor:pointer}
`;

/** The report as one HTML file: inline CSS and SVG, no script, no link, nothing loaded from anywhere. */
export function toHtml(doc: ReportDocument): string {
  return [
    '<!DOCTYPE html>',
    '<html lang="en"><head><meta charset="utf-8">',
    '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src \'unsafe-inline\'; img-src data:">',
    `<title>${esc(doc.title)}</title><style>${CSS}</style></head><body>`,
    `<header><h1>${esc(doc.title)}</h1><p>${esc(doc.subtitle)}</p></header>`,
    `<nav>${doc.sections.map((s) => `<a href="#${esc(s.id)}">${esc(s.title)}</a>`).join('')}</nav>`,
    '<main>',
    ...doc.sections.map((s) => `<section id="${esc(s.id)}"><h2>${esc(s.title)}</h2>\n${s.blocks.map(htmlBlock).join('\n')}\n</section>`),
    '</main></body></html>',
    '',
  ].join('\n');
}

// Markdown ------------------------------------------------------------------------------------------------------

const mdEsc = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
function mdInline(i: Inline): string {
  if (typeof i === 'string') return i;
  if ('code' in i) {
    const ticks = i.code.includes('`') ? '``' : '`';
    return i.wild ? `**${ticks}${i.code}${ticks}** (wildcard)` : `${ticks}${i.code}${ticks}`;
  }
  if ('strong' in i) return `**${i.strong}**`;
  return `**${i.warn}**`;
}
const mdText = (t: Text) => inlines(t).map(mdInline).join('');

function mdBlock(b: Block, level: number): string {
  if ('p' in b) return mdText(b.p);
  if ('list' in b) return b.list.map((t) => `- ${mdText(t)}`).join('\n');
  if ('table' in b) {
    return [
      `| ${b.table.head.map(mdEsc).join(' | ')} |`,
      `|${b.table.head.map(() => '---').join('|')}|`,
      ...b.table.rows.map((r) => `| ${r.cells.map((c) => mdEsc(mdText(c)) || ' ').join(' | ')} |`),
    ].join('\n');
  }
  if ('svg' in b) return `_${b.caption}: the diagram is drawn in report.html._`;
  if ('details' in b) return [`**${mdText(b.details.summary)}**`, ...b.details.blocks.map((x) => mdBlock(x, level + 1))].join('\n\n');
  const q = b.question;
  return [`${'#'.repeat(level)} ${q.q}`, `**${mdText(q.answer)}**`, 'Evidence:', ...q.evidence.map((x) => mdBlock(x, level + 1))].join('\n\n');
}

export function toMarkdown(doc: ReportDocument): string {
  return [
    `# ${doc.title}`, '', doc.subtitle, '',
    ...doc.sections.flatMap((s) => [`## ${s.title}`, '', ...s.blocks.flatMap((b) => [mdBlock(b, 3), ''])]),
  ].join('\n');
}
