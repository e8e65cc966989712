// A node --test reporter that prints, as TAP comments, each test as it
// starts (`# run  FILE: NAME`) and as it ends (`# end  FILE: NAME`), the
// moment the runner hears of it. tests/run.sh runs it beside the TAP
// reporter; when its timeout ends a hung suite, the tests started and never
// ended are the ones that hung (the TAP reporter says nothing of a test
// until it is over).
import { basename } from 'node:path';

export default async function* marks(source) {
  for await (const { type, data } of source) {
    if (type !== 'test:dequeue' && type !== 'test:complete') continue;
    // The runner's own entry for a whole file is not a test of it.
    if (!data?.name || data.name === data.file) continue;
    const where = data.file ? basename(data.file) : '?';
    yield `# ${type === 'test:dequeue' ? 'run ' : 'end '} ${where}: ${data.name}\n`;
  }
}
