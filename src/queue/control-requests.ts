/*
 * control-requests — the running queue manager answering the request files that
 * `mxscreen queue …` leaves in control/ (queue-control.ts; Postfix's postqueue and
 * postsuper talk to qmgr(8) through its trigger instead).
 *
 * Decides: requests are answered one batch at a time, in name order; a call while a
 * batch runs does not start a second one but asks for one more pass after it (a request
 * written during a batch is never missed), at most 100 passes per batch.
 * Leaves to others: when to look (the control/ watcher and every queue run,
 * queue-manager.ts), the file protocol and what each command does (queue-control.ts).
 * Bugs: a request that keeps arriving during 100 passes waits for the next look.
 */
import { answerControlRequest, pendingControlRequests, type ControlReply, type ControlRequest } from './queue-control.js';

export class ControlRequests {
  readonly #directory: string;
  readonly #apply: (request: ControlRequest) => Promise<ControlReply>;
  #running: Promise<void> | undefined;
  #again = false;

  /** Answers the requests of queue `directory`'s control/ with `apply` (the owner's control()). */
  constructor(directory: string, apply: (request: ControlRequest) => Promise<ControlReply>) {
    this.#directory = directory;
    this.#apply = apply;
  }

  /**
   * Answers every waiting request; resolves when the batch (with the passes asked for
   * meanwhile) is done. Never rejects: queue-control.ts answers failures in the reply.
   */
  answer(): Promise<void> {
    if (this.#running) {
      this.#again = true;
      return this.#running;
    }
    this.#running = (async () => {
      // Bounded: each pass answers what is there; a new request during it allows one more.
      for (let pass = 0; pass < 100; pass += 1) {
        this.#again = false;
        const directory = this.#directory;
        for (const name of await pendingControlRequests(directory)) {
          await answerControlRequest(directory, name, this.#apply);
        }
        if (!this.#again) break;
      }
    })().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }
}
