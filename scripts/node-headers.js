// node-gyp and cmake-js want Node's headers; both download them from nodejs.org unless told where
// they are. Every Node build used here (Debian's, node-linux-<arch> from npm) ships them under
// <prefix>/include/node, so point npm_config_nodedir there and nothing is downloaded.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

/** Environment additions for a node-gyp / cmake-js child: {} when nodedir is already configured. */
function nodeHeadersEnv(env = process.env, execPath = process.execPath) {
  if (env.npm_config_nodedir) return {};
  const prefix = path.resolve(path.dirname(execPath), '..');
  return fs.existsSync(path.join(prefix, 'include', 'node', 'node.h')) ? { npm_config_nodedir: prefix } : {};
}

module.exports = { nodeHeadersEnv };
