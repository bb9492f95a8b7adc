import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fixedPortWindow, reservePort } from '../src/shared/reserve-port.js';

const held: Server[] = [];
afterEach(async () => { await Promise.all(held.splice(0).map((s) => new Promise((r) => s.close(r)))); });

function listen(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port, exclusive: true }, () => { held.push(server); resolve(server); });
  });
}

describe('reservePort', () => {
  it('resolves port 0 to a free port below the kernel ephemeral range, so no outgoing connection can take it first', async () => {
    const [low, high] = fixedPortWindow();
    const ports = await Promise.all(Array.from({ length: 5 }, () => reservePort('127.0.0.1', 0)));
    for (const port of ports) {
      expect(port).toBeGreaterThanOrEqual(low);
      expect(port).toBeLessThan(high);
      await listen(port); // and it really is free
    }
  });

  it('refuses a port something already listens on, naming it', async () => {
    const server = await listen(0);
    const port = (server.address() as { port: number }).port;
    await expect(reservePort('127.0.0.1', port)).rejects.toThrow(`cannot listen on 127.0.0.1:${port}: the port is already in use`);
  });

  it('refuses an address that is not this machine\'s', async () => {
    await expect(reservePort('192.0.2.1', 0)).rejects.toThrow('192.0.2.1 is not an address of this machine');
  });

  it('reads the window from ip_local_port_range, and keeps the usual one when the file is missing or odd', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'ringcast-ports-'));
    const file = path.join(dir, 'range');
    writeFileSync(file, '40000\t60999\n');
    expect(fixedPortWindow(file)).toEqual([28_000, 40_000]);
    writeFileSync(file, '5000 60999\n');
    expect(fixedPortWindow(file)).toEqual([1024, 5000]);
    writeFileSync(file, 'junk\n');
    expect(fixedPortWindow(file)).toEqual([20_768, 32_768]);
    expect(fixedPortWindow(path.join(dir, 'absent'))).toEqual([20_768, 32_768]);
  });
});
