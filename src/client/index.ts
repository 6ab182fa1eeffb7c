/**
 * The weft client for application code: `import { WeftClient } from '<package>/client'`.
 * docs/client.md shows it at work; docs/api.md is the API it speaks.
 */
export {
  WeftClient,
  type ApiToken,
  type CreateScheduleRequest,
  type CreateTaskRequest,
  type CreateTasksOptions,
  type CreatedTask,
  type History,
  type ListTasksFilter,
  type NewApiToken,
  type Schedule,
  type ScheduleEvent,
  type Task,
  type TaskBatch,
  type TaskBatchResult,
  type TaskList,
  type TaskListItem,
  type TaskStep,
  type TaskStreamEvent,
  type Template,
  type TemplateRegistration,
  type WaitOptions,
  type WeftClientOptions,
} from './client.js';
export {
  WeftApiError,
  ApiConflictError,
  ApiForbiddenError,
  ApiInvalidInputError,
  ApiNotFoundError,
  ApiRateLimitedError,
  ApiUnauthorizedError,
  ApiUnavailableError,
  HttpUnreachableError,
  type ApiErrorBody,
} from './errors.js';
export type { StepChange, TaskEndEvent, TokenScope } from '../core/api-types.js';
export type { StepState, TaskState } from '../core/states.js';
