import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/**
 * Bind the port once, exclusively, and let it go: this both resolves port 0 to a real port
 * and refuses to start when anything (another ringcast included) already listens there —
 * gateways bind with SO_REUSEPORT, which would otherwise quietly share the port.
 *
 * Port 0 is resolved to a free port *below* the kernel's ephemeral range. Between this
 * probe closing and the gateways listening, the kernel may hand an ephemeral port to any
 * outgoing connection on the machine; a port outside that range is only ever taken by
 * someone who asks for it by number.
 */
export async function reservePort(host: string, port: number): Promise<number> {
  if (port !== 0) return probe(host, port);
  const [low, high] = fixedPortWindow();
  for (let attempt = 0; attempt < 32 && high > low; attempt += 1) {
    const candidate = low + Math.floor(Math.random() * (high - low));
    try {
      return await probe(host, candidate);
    } catch (error) {
      if ((error as PortError).code !== 'EADDRINUSE') throw error;
    }
  }
  return probe(host, 0); // the window is crowded: let the kernel choose
}

/** The window random ports are drawn from: up to 12,000 ports just below the ephemeral range. */
export function fixedPortWindow(rangeFile = '/proc/sys/net/ipv4/ip_local_port_range'): [number, number] {
  let ephemeralLow = 32_768;
  try {
    const first = Number.parseInt(readFileSync(rangeFile, 'utf8').trim().split(/\s+/)[0] ?? '', 10);
    if (Number.isInteger(first) && first > 0) ephemeralLow = first;
  } catch { /* not Linux: keep the usual default */ }
  return [Math.max(1024, ephemeralLow - 12_000), ephemeralLow];
}

interface PortError extends Error { code?: string }

function probe(host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', (error: NodeJS.ErrnoException) => {
      const failure: PortError = new Error(error.code === 'EADDRINUSE'
        ? `cannot listen on ${host}:${port}: the port is already in use`
        : `cannot listen on ${host}:${port}: ${error.code === 'EADDRNOTAVAIL' ? `${host} is not an address of this machine` : error.message}`);
      if (error.code !== undefined) failure.code = error.code;
      reject(failure);
    });
    server.listen({ host, port, exclusive: true }, () => {
      const actual = (server.address() as { port: number }).port;
      server.close(() => resolve(actual));
    });
  });
}
