// The linter `npm test` runs: typescript-eslint's recommended rules over what tsc compiles, and
// the plain JavaScript beside it (the `fur` launcher, the test runner, the examples, the live view's page).
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'bench/results/'] },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    rules: {
      // the compiler's convention (noUnusedParameters): a name that starts with _ is unused on purpose
      // a variable a callback reads before it is set (the callback is made first) stays a let
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_' }],
    },
  },
  // what parses a terminal's output matches its escape sequences (ESC, 0x1b)
  { files: ['test/support/terminal.ts', 'test/interop/progress-pty.test.ts'], rules: { 'no-control-regex': 'off' } },
  { files: ['bin/**/*.js', 'scripts/**/*.mjs', 'examples/**/*.mjs', 'eslint.config.js'], languageOptions: { globals: globals.node } },
  { files: ['src/serve/page/**/*.js'], languageOptions: { globals: { ...globals.browser, uPlot: 'readonly' } } },
);
