import type { Database } from '../store/database.js';
import type { Logger } from '../shared/logger.js';
import type { WeftConfig } from '../shared/config.js';
import type { MessageBus } from './types.js';
import { PgMessageBus } from './pg.js';
import { RabbitMessageBus } from './rabbitmq.js';

export * from './types.js';
export * from './queues.js';

/** The bus WEFT_MESSAGING asks for. */
export function createMessageBus(
  config: Pick<WeftConfig, 'messaging' | 'amqpUrl' | 'pollIntervalMs'> & { queuePrefix?: string },
  db: Database,
  log: Logger,
): MessageBus {
  if (config.messaging === 'rabbitmq') {
    return new RabbitMessageBus({ url: config.amqpUrl, prefix: config.queuePrefix ?? process.env.WEFT_QUEUE_PREFIX ?? 'weft' }, db, log);
  }
  return new PgMessageBus(db, log, { pollIntervalMs: config.pollIntervalMs });
}
