// Types of requirements.js for the TypeScript tests (test/requirements.ts).
export type ToolId = 'cmake' | 'tmux' | 'valgrind' | 'chromium' | 'arm64-cross' | 'qemu-user';

export interface ToolDef {
  binaries: string[];
  files?: string[];
  envOverride?: string;
  apt: string[];
}

export interface Skip {
  kind: 'stage' | 'test';
  name: string;
  reason: string;
  enable: string;
  stage?: string | null;
}

export const TOOLS: Record<ToolId, ToolDef>;
export const ARM64_SYSROOT: string;
export const SKIP_LOG_ENV: string;
export const SKIP_STAGE_ENV: string;
export function aptLine(packages: string[]): string;
export function checkTools(ids: ToolId[]): { reason: string; enable: string } | null;
export function onPath(name: string, envPath?: string): string | null;
export function readSkips(file: string): Skip[];
export function reportSkip(skip: Skip): void;
export function requireAll(env?: Record<string, string | undefined>): boolean;
export function skipSummary(skips: Skip[]): string[];
export function toolPath(id: ToolId): string | null;
