/** Channel i's name in bench/capture (Twitch names are 3-25 characters). */
export const chan = (i: number): string => `bench${String(i).padStart(4, '0')}`;

/** The channel number back from its name (-1 for a name not made by chan()). */
export const chanIndex = (name: string): number => {
  const m = /^bench(\d{4,})$/.exec(name);
  return m ? Number(m[1]) : -1;
};
