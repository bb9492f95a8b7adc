/** Channel i's name in bench/capture (Twitch names are 3-25 characters). */
export const chan = (i: number): string => `bench${String(i).padStart(4, '0')}`;
