import type { Database } from '../store/database.js';
import type { Logger } from '../shared/logger.js';
import { DEFAULT_QUEUE_PREFIX, type WeftConfig } from '../shared/config.js';
import type { MessageBus } from './types.js';
import { PgMessageBus } from './pg.js';
import { RabbitMessageBus } from './rabbitmq.js';

export * from './types.js';
export * from './queues.js';

/** The bus WEFT_MESSAGING asks for: one case per row of the backend list (src/shared/backends.ts). */
export function createMessageBus(config: Pick<WeftConfig, 'messaging' | 'amqpUrl' | 'pollIntervalMs' | 'queuePrefix'>, db: Database, log: Logger): MessageBus {
  switch (config.messaging) {
    case 'rabbitmq':
      return new RabbitMessageBus({ url: config.amqpUrl, prefix: config.queuePrefix ?? DEFAULT_QUEUE_PREFIX }, db, log);
    case 'pg':
      return new PgMessageBus(db, log, { pollIntervalMs: config.pollIntervalMs });
  }
}
