import { createRequire } from 'node:module';
import path from 'node:path';
import { packageRoot } from './native';

export const version: string = (createRequire(path.join(packageRoot, 'package.json'))('./package.json') as { version: string }).version;
