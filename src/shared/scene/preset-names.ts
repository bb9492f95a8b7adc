/** The scene presets by name (kept apart from their layouts so config can name them without canvas). */
export const SCENE_PRESETS = ['training', 'multistream', 'intermission'] as const;
export type ScenePreset = (typeof SCENE_PRESETS)[number];

export function isScenePreset(name: unknown): name is ScenePreset {
  return typeof name === 'string' && (SCENE_PRESETS as readonly string[]).includes(name);
}
