import nx from '@nx/eslint-plugin';
import tseslint from 'typescript-eslint';
import prettier from 'eslint-config-prettier';

export default [
  { ignores: ['**/node_modules', '**/dist', '**/tmp', '**/generated/**', '**/vite.config.ts'] },
  ...tseslint.configs.recommended,
  prettier,
  {
    files: ['**/*.ts'],
    plugins: { '@nx': nx },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/ban-ts-comment': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@nx/enforce-module-boundaries': [
        'error',
        {
          enforceBuildableLibDependency: false,
          allow: [],
          depConstraints: [
            // type:testing is allowed everywhere for tests; production files may not import it (below).
            {
              sourceTag: 'type:app',
              onlyDependOnLibsWithTags: [
                'type:feature',
                'type:data-access',
                'type:util',
                'type:contracts',
                'type:testing',
              ],
            },
            {
              sourceTag: 'type:feature',
              onlyDependOnLibsWithTags: [
                'type:feature',
                'type:data-access',
                'type:util',
                'type:contracts',
                'type:testing',
              ],
            },
            {
              sourceTag: 'type:data-access',
              onlyDependOnLibsWithTags: ['type:data-access', 'type:util', 'type:contracts', 'type:testing'],
            },
            { sourceTag: 'type:util', onlyDependOnLibsWithTags: ['type:util', 'type:testing'] },
            { sourceTag: 'type:contracts', onlyDependOnLibsWithTags: ['type:contracts'] },
            {
              sourceTag: 'type:testing',
              onlyDependOnLibsWithTags: ['type:util', 'type:data-access', 'type:contracts'],
            },
            // Cross-service tests may start anything.
            { sourceTag: 'type:e2e', onlyDependOnLibsWithTags: ['*'] },
            { sourceTag: 'scope:e2e', onlyDependOnLibsWithTags: ['*'] },
            { sourceTag: 'scope:shared', onlyDependOnLibsWithTags: ['scope:shared'] },
            {
              sourceTag: 'scope:proxy',
              onlyDependOnLibsWithTags: ['scope:proxy', 'scope:shared'],
              bannedExternalImports: ['mongodb'],
            },
            { sourceTag: 'scope:storage', onlyDependOnLibsWithTags: ['scope:storage', 'scope:shared'] },
            {
              sourceTag: 'scope:lathens',
              onlyDependOnLibsWithTags: ['scope:lathens', 'scope:shared'],
              bannedExternalImports: ['mongodb'],
            },
            {
              sourceTag: 'scope:crathens',
              onlyDependOnLibsWithTags: ['scope:crathens', 'scope:shared'],
              bannedExternalImports: ['mongodb'],
            },
          ],
        },
      ],
    },
  },

  {
    files: ['**/*.ts'],
    ignores: [
      '**/*.test.ts',
      '**/test-support/**',
      'libs/testing/**',
      'bench/**',
      '**/compliance/**',
      '**/conformance/**',
      '**/testing/**',
      'apps/e2e/**',
      'apps/deploy-tests/**',
    ],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            { name: '@modproxy/testing', message: 'test support is for tests only' },
            { name: '@modproxy/storage-mongo/testing', message: 'test support is for tests only' },
            { name: '@modproxy/storage/compliance', message: 'test support is for tests only' },
          ],
        },
      ],
    },
  },
];
