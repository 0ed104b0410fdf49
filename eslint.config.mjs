// ESLint for every workspace (`npm run lint`, which CI runs): typescript-eslint's
// type-aware rules, so that a fire-and-forget promise is written as such
// (`void p.catch(…)`), unused code goes, type imports are marked, and `any`
// does not leak out of the places that must use it.
// One run over the whole tree after a build (the packages' types come from their
// dist/ folders), in one process: quicker on 2 cores than one per workspace.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["**/dist/**", "**/node_modules/**", "libs/proto/src/gen/**", "docs/**", "**/*.mjs", "**/*.js"] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    linterOptions: { reportUnusedDisableDirectives: "error" },
    rules: {
      "@typescript-eslint/no-floating-promises": [
        "error",
        { ignoreVoid: true, allowForKnownSafeCalls: [{ from: "package", package: "node:test", name: ["test", "describe", "it", "suite", "before", "after", "beforeEach", "afterEach"] }] },
      ],
      "@typescript-eslint/no-misused-promises": ["error", { checksVoidReturn: { arguments: false, attributes: false } }],
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none" }],
      "@typescript-eslint/consistent-type-imports": ["error", { fixStyle: "inline-type-imports" }],
      "@typescript-eslint/no-import-type-side-effects": "error",
      "@typescript-eslint/no-explicit-any": "error",
      // Handlers are written as async functions for one shape, even when they await nothing.
      "@typescript-eslint/require-await": "off",
      // protobuf-es and connect-es hand out values typed loosely at the edges; these checks
      // would flag every generated-type boundary without finding bugs.
      "@typescript-eslint/no-unsafe-assignment": "off",
      "@typescript-eslint/no-unsafe-member-access": "off",
      "@typescript-eslint/no-unsafe-argument": "off",
      "@typescript-eslint/no-unsafe-call": "off",
      "@typescript-eslint/no-unsafe-return": "off",
      "@typescript-eslint/restrict-template-expressions": "off",
      "@typescript-eslint/only-throw-error": "off",
    },
  },
  {
    // Tests may use `any` for grpc-js's dynamically loaded clients and for rendered YAML, and assert on anything.
    files: ["**/*.test.ts", "**/testing.ts", "**/*-harness.ts", "services/node/src/fuzz/**", "deploy/src/**"],
    rules: { "@typescript-eslint/no-explicit-any": "off", "@typescript-eslint/no-non-null-assertion": "off" },
  },
);
