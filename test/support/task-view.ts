import { getTaskView, type TaskView } from '../../src/store/tasks.js';
import type { Database } from '../../src/store/database.js';

/** Poll a task's view until `ok` holds (or fail after `ms`, naming the task's and its steps' states). */
export async function untilTask(db: Database, id: string, ok: (v: TaskView) => boolean, ms = 20_000): Promise<TaskView> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = (await getTaskView(db, id))!;
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`task ${id}: condition not met; ${v.state}, steps ${v.steps.map((s) => `${s.name}=${s.state}`).join(', ')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The step of a task view with this name. */
export const stepNamed = (v: TaskView, name: string) => v.steps.find((s) => s.name === name)!;
