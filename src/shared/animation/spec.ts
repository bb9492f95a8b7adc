/**
 * AnimationSpec: the JSON form of an animation, stored on a scene layer (`layer.animations`).
 *
 * Common fields (every kind):
 *   id?        name reported in start/end events (default: the spec's path, e.g. "0" or "1.children.0")
 *   delay      wait before the first iteration (default 0)
 *   unit       's' (default) or 'frames': the unit of delay and duration
 *   loop       iterations: a count >= 1 (default 1) or 'infinite'
 *   yoyo       play every odd iteration backwards (default false)
 *
 * Kinds:
 *   tween (default)  { property, from?, to, duration, easing? }  from omitted = the layer's own value
 *                    { property, keyframes: [{at: 0..1, value, easing?}], duration, easing? }
 *                    keyframe `easing` shapes the segment that starts at that keyframe; the spec's `easing`
 *                    warps the overall time fraction first.
 *   spring           { property, from?, to, stiffness=170, damping=26, mass=1, velocity=0, duration? }
 *                    duration defaults to the spring's settle time (used by sequences and `end` events).
 *   sequence         { children: AnimationSpec[] } children one after another
 *   parallel         { children: AnimationSpec[] } children together; lasts as long as the longest
 *
 * Colour tweens: from/to (or keyframe values) given as #hex / rgb() / rgba() on a props.<name> (e.g.
 * props.color) interpolate per channel; `from` is required for them.
 * Properties are numeric paths on a layer: opacity, width, height, transform.x, transform.y,
 * transform.scale, transform.rotation, or props.<name> (a numeric prop such as props.fontSize).
 * Easing: a name from EASINGS (e.g. "easeInOutCubic"), a CSS keyword ("ease", "ease-in-out"…) or [x1,y1,x2,y2].
 */
import { z } from 'zod';
import { parseColor } from './color.js';
import { isEasingName, type EasingSpec } from './easing.js';

export const ANIMATABLE_PROPERTIES = [
  'opacity', 'width', 'height', 'transform.x', 'transform.y', 'transform.scale', 'transform.rotation',
] as const;

export function isAnimatableProperty(path: string): boolean {
  return (ANIMATABLE_PROPERTIES as readonly string[]).includes(path) || /^props\.[A-Za-z_$][\w$]*$/.test(path);
}

const finite = z.number().finite();

const easingSchema: z.ZodType<EasingSpec> = z.union([
  z.string().refine(isEasingName, (v) => ({ message: `unknown easing "${v}"` })),
  z
    .tuple([finite, finite, finite, finite])
    .refine(([x1, , x2]) => x1 >= 0 && x1 <= 1 && x2 >= 0 && x2 <= 1, 'cubic-bezier x1 and x2 must be within [0,1]'),
]) as z.ZodType<EasingSpec>;

const property = z
  .string()
  .refine(isAnimatableProperty, (v) => ({
    message: `"${v}" is not animatable (use ${ANIMATABLE_PROPERTIES.join(', ')} or props.<name>)`,
  }));

const common = {
  id: z.string().min(1).max(100).optional(),
  delay: finite.min(0).default(0),
  unit: z.enum(['s', 'frames']).default('s'),
  loop: z.union([z.number().int().min(1), z.literal('infinite')]).default(1),
  yoyo: z.boolean().default(false),
};

/** A tween value: a number, or a colour (#hex / rgb() / rgba()) for props.<name> colour tweens. */
const colorValue = z.string().refine((v) => parseColor(v) !== null, (v) => ({
  message: `"${v}" is not a colour a tween can interpolate (use #rgb, #rrggbb, #rrggbbaa, rgb() or rgba())`,
}));
const tweenValue = z.union([finite, colorValue]);

const keyframe = z.object({ at: finite.min(0).max(1), value: tweenValue, easing: easingSchema.optional() }).strict();

const tweenSchema = z
  .object({
    kind: z.literal('tween').default('tween'),
    ...common,
    property,
    from: tweenValue.optional(),
    to: tweenValue.optional(),
    keyframes: z.array(keyframe).min(2).max(64).optional(),
    duration: finite.positive(),
    easing: easingSchema.optional(),
  })
  .strict()
  .superRefine((v, ctx) => {
    if (v.keyframes) {
      if (v.from !== undefined || v.to !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['keyframes'], message: 'give either keyframes or from/to, not both' });
      }
      for (let i = 1; i < v.keyframes.length; i++) {
        if (v.keyframes[i].at < v.keyframes[i - 1].at) {
          ctx.addIssue({ code: 'custom', path: ['keyframes', i, 'at'], message: 'keyframes must be sorted by `at`' });
        }
      }
    } else if (v.to === undefined) {
      ctx.addIssue({ code: 'custom', path: ['to'], message: 'a tween needs `to` (or `keyframes`)' });
    }
    // Colour tweens: every value a colour, on a props.<name> (layer geometry is numeric), `from` given
    // (the layer's own colour is not known to the animation engine as channels).
    const values = v.keyframes ? v.keyframes.map((k) => k.value) : [v.from, v.to].filter((x) => x !== undefined);
    const colours = values.filter((x) => typeof x === 'string').length;
    if (colours > 0) {
      if (colours !== values.length) {
        ctx.addIssue({ code: 'custom', path: [v.keyframes ? 'keyframes' : 'to'], message: 'mix of numbers and colours: use one kind' });
      } else if (!v.property.startsWith('props.')) {
        ctx.addIssue({ code: 'custom', path: ['property'], message: `"${v.property}" is numeric; colours animate props.<name> only` });
      } else if (!v.keyframes && v.from === undefined) {
        ctx.addIssue({ code: 'custom', path: ['from'], message: 'a colour tween needs `from`' });
      }
    }
  });

const springSchema = z
  .object({
    kind: z.literal('spring'),
    ...common,
    property,
    from: finite.optional(),
    to: finite,
    stiffness: finite.positive().default(170),
    damping: finite.min(0).default(26),
    mass: finite.positive().default(1),
    velocity: finite.default(0),
    duration: finite.positive().optional(),
  })
  .strict();

export type TweenSpec = z.output<typeof tweenSchema>;
export type SpringSpec = z.output<typeof springSchema>;
export interface GroupSpec {
  kind: 'sequence' | 'parallel';
  id?: string;
  delay: number;
  unit: 's' | 'frames';
  loop: number | 'infinite';
  yoyo: boolean;
  children: AnimationSpec[];
}
/** A validated animation spec (defaults filled). Input JSON may omit defaulted fields. */
export type AnimationSpec = TweenSpec | SpringSpec | GroupSpec;

const groupSchema: z.ZodType<GroupSpec, z.ZodTypeDef, unknown> = z.lazy(() =>
  z
    .object({
      kind: z.enum(['sequence', 'parallel']),
      ...common,
      children: z.array(animationSpecSchema).min(1).max(64),
    })
    .strict(),
);

/** Dispatches on `kind` by hand so an error names the fields of the kind the user meant, not a union soup. */
export const animationSpecSchema: z.ZodType<AnimationSpec, z.ZodTypeDef, unknown> = z.lazy(() =>
  z.unknown().transform((input, ctx): AnimationSpec => {
    const kind = typeof input === 'object' && input !== null ? (input as { kind?: unknown }).kind : undefined;
    let schema: z.ZodTypeAny;
    if (kind === undefined || kind === 'tween') schema = tweenSchema;
    else if (kind === 'spring') schema = springSchema;
    else if (kind === 'sequence' || kind === 'parallel') schema = groupSchema;
    else {
      ctx.addIssue({ code: 'custom', path: ['kind'], message: `unknown animation kind "${String(kind)}" (tween, spring, sequence, parallel)` });
      return z.NEVER;
    }
    const r = schema.safeParse(input);
    if (r.success) return r.data as AnimationSpec;
    for (const issue of r.error.issues) ctx.addIssue({ ...issue, path: issue.path } as z.IssueData);
    return z.NEVER;
  }),
);

export const MAX_ANIMATIONS_PER_LAYER = 32;
export const animationListSchema = z.array(animationSpecSchema).max(MAX_ANIMATIONS_PER_LAYER);
