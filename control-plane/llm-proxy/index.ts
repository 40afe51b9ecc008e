export * from './endpoint';
export * from './config';
export * from './providers';
export * from './provision';
export * from './server';
export * from './store';
export * from './token';
