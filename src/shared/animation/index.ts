export * from './easing.js';
export * from './spring.js';
export * from './spec.js';
export * from './timeline.js';
export * from './color.js';
