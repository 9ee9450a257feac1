// Types of prebuild.js for the TypeScript tests (test/package.test.ts).
export type Arch = 'x64' | 'arm64';
export const ARCHES: Record<Arch, { env: Record<string, string>; strip: string; tools: string[] }>;
export const ELF_MACHINE: Record<Arch, number>;
export const FLOOR: Record<'GLIBC' | 'GLIBCXX' | 'CXXABI' | 'GCC', string>;
export const SOURCES: string[];
export function aboveFloor(needs: Record<string, string>): string[];
export function elfMachine(file: string): number | null;
export function prebuild(arch: Arch): string;
export function prebuildPath(arch: Arch): string;
export function versionNeeds(file: string): Record<string, string>;
