#!/usr/bin/env node
// Loads the TypeScript CLI in this same process (tsx's loader), so `npx peergate` needs
// no build step and signals such as SIGHUP reach peergate itself, not a wrapper.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
