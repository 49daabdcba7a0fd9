/** fur's version: printed by `fur --version` and written into every file fur makes (`fur_version`). Kept equal to package.json's by a test. */
export const FUR_VERSION = '0.1.0';
