/** Reading series out of the service's /metrics exposition. */

/** Sum of every series of `name` whose labels include `labels`. */
export async function metricSum(port: number, name: string, labels: Record<string, string> = {}): Promise<number> {
  return sumSeries(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text(), name, labels);
}

/** Sum of every series of `name` in an exposition text whose labels include `labels`. */
export function sumSeries(text: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

/** Every actor restart so far (all actors, all reasons). */
export function actorRestarts(port: number): Promise<number> {
  return metricSum(port, 'ringcast_actor_restarts_total');
}
