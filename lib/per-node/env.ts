// HWSQ_NUMA_NODE: the NUMA node a process was started on by `hwsq run --per-node` or
// forkPerNode. A Runtime or NativeRuntime with default placement then puts every P on that node.
import { ErrorCodes, rangeError } from '../core/errors';

export const NUMA_NODE_ENV = 'HWSQ_NUMA_NODE';

/**
 * The node named by HWSQ_NUMA_NODE, or undefined when it is unset or empty. Anything but a
 * decimal node id is a RangeError ERR_HWSQ_INVALID_OPTION: a typo must not silently spread a
 * per-node process over the whole machine. Whether the node exists is checked where it is used.
 */
export function numaNodeFromEnv(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const raw = env[NUMA_NODE_ENV];
  if (raw === undefined || raw === '') return undefined;
  const id = /^\d{1,9}$/.test(raw.trim()) ? Number(raw.trim()) : NaN;
  if (Number.isNaN(id)) {
    throw rangeError(ErrorCodes.INVALID_OPTION, `${NUMA_NODE_ENV} must be a NUMA node id (a non-negative integer), got ${JSON.stringify(raw)}`);
  }
  return id;
}
