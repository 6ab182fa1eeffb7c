import { describeRuntime } from './runtime-suite.js';

describeRuntime('typescript');
