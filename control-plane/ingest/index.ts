export * from './check';
export * from './store';
export * from './service';
export * from './settings';
export * from './registry';
export * from './pool';
