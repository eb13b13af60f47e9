// Types of bin/build-id.mjs, for the TypeScript that imports it (the bench, the tests).
export declare const SOURCE_DIRS: string[];
export declare const BUILD_INPUTS: string[];
export declare const DIST: string;
export declare const RUNTIME_ENV: string;
export declare function sourceFiles(root: string): string[];
export declare function buildId(root: string): string;
export declare function chooseRuntime(root: string, env?: Record<string, string | undefined>): { runtime: "dist" | "tsx"; reason: string };
