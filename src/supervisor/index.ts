export { Supervisor } from './supervisor.js';
export type { ActorStatus, StopResult, SupervisorEvents } from './supervisor.js';
export { ActorDiedError, ActorCallTimeoutError } from './actor-handle.js';
export { resolveSupervisorSpec, SpecError, restartStrategies } from './spec.js';
export type { ActorSpec, RingSpec, SupervisorSpec, RestartStrategy } from './spec.js';
