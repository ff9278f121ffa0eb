// Reading the docs' examples, for the tests that hold them to the code (service/docs.test.ts, cli/tour.test.ts).

/** The fenced blocks of a page whose info string starts with `lang`, with the line each starts on. */
export function fencedBlocks(text: string, lang: string): { info: string; code: string; line: number }[] {
  const blocks: { info: string; code: string; line: number }[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)(.*)$/.exec(lines[i]);
    if (!open) continue;
    const end = lines.indexOf('```', i + 1);
    if (open[1] === lang)
      blocks.push({ info: `${open[1]}${open[2]}`, code: lines.slice(i + 1, end).join('\n'), line: i + 1 });
    i = end;
  }
  return blocks;
}
