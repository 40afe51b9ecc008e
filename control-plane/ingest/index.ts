export * from './check';
export * from './store';
export * from './service';
