#!/usr/bin/env node
// Entry for the `mxscreen` command: runs the compiled CLI (npm run build makes dist/).
import '../dist/src/cli.js';
