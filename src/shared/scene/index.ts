export * from './model.js';
export * from './evaluate.js';
