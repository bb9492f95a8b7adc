import { createServer } from 'node:net';

/**
 * Bind the port once, exclusively, and let it go: this both resolves port 0 to a real port
 * and refuses to start when anything (another ringcast included) already listens there —
 * gateways bind with SO_REUSEPORT, which would otherwise quietly share the port.
 */
export function reservePort(host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (error: NodeJS.ErrnoException) => {
      reject(new Error(error.code === 'EADDRINUSE'
        ? `cannot listen on ${host}:${port}: the port is already in use`
        : `cannot listen on ${host}:${port}: ${error.code === 'EADDRNOTAVAIL' ? `${host} is not an address of this machine` : error.message}`));
    });
    probe.listen({ host, port, exclusive: true }, () => {
      const actual = (probe.address() as { port: number }).port;
      probe.close(() => resolve(actual));
    });
  });
}
