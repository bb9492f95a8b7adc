/**
 * The StateStore contract every implementation keeps (SQLite, memory, Redis): the same
 * puts, gets, lists, deletes, transactions and refusals.
 */
import { describe, expect, it } from 'vitest';
import type { StateStore } from '../../src/shared/state-store.js';

export function stateStoreContract(name: string, open: () => StateStore | Promise<StateStore>): void {
  describe(`${name} contract`, () => {
    it('puts, gets, lists and deletes within a namespace', async () => {
      const store = await open();
      const before = Date.now();
      store.put('scene', 'b', { layout: 'split' });
      store.put('scene', 'a', [1, 2, 3]);
      store.put('streams', 'a', 'other namespace');
      store.put('scene', 'b', { layout: 'full' }); // overwrite

      expect(store.get('scene', 'b')).toEqual({ layout: 'full' });
      expect(store.get('scene', 'missing')).toBeUndefined();

      const listed = store.list('scene');
      expect(listed.map((e) => [e.key, e.value])).toEqual([
        ['a', [1, 2, 3]],
        ['b', { layout: 'full' }],
      ]);
      expect(listed.every((e) => e.updatedAt >= before && e.updatedAt <= Date.now())).toBe(true);

      expect(store.delete('scene', 'a')).toBe(true);
      expect(store.delete('scene', 'a')).toBe(false);
      expect(store.list('scene').map((e) => e.key)).toEqual(['b']);
      expect(store.get('streams', 'a')).toBe('other namespace');
      store.close();
    });

    it('rolls back every write of a transaction that throws', async () => {
      const store = await open();
      store.put('prediction_games', 'g1', { open: true });
      expect(() =>
        store.transaction((tx) => {
          tx.put('prediction_games', 'g1', { open: false });
          tx.put('prediction_games', 'g2', { open: true });
          throw new Error('settlement failed');
        }),
      ).toThrow('settlement failed');
      expect(store.get('prediction_games', 'g1')).toEqual({ open: true });
      expect(store.get('prediction_games', 'g2')).toBeUndefined();

      expect(store.transaction((tx) => (tx.put('prediction_games', 'g3', 1), 'committed'))).toBe('committed');
      expect(store.get('prediction_games', 'g3')).toBe(1);
      store.close();
    });

    it('refuses values JSON cannot represent', async () => {
      const store = await open();
      expect(() => store.put('scene', 'x', undefined)).toThrow(TypeError);
      store.close();
    });
  });
}
