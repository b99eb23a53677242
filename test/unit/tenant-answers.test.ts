import assert from 'node:assert/strict';
import { tenantInfo, tenantVersion } from '../../src/docker/tenant-answers.js';

describe('what `docker info` and `docker version` tell a tenant (pure)', () => {
  it("info keeps the engine's harmless fields, counts the project's own containers by state and the images it may use, and nothing of the host", () => {
    const engine = {
      ServerVersion: '20.10.24', OSType: 'linux', NCPU: 2, MemTotal: 24e9, Name: 'the-host', DockerRootDir: '/var/lib/docker',
      Containers: 57, ContainersRunning: 40, Swarm: { NodeID: 'x' }, RegistryConfig: { Mirrors: ['m'] }, Plugins: { Volume: ['local'] },
    };
    const own = [{ State: 'running' }, { State: 'running' }, { State: 'paused' }, { State: 'exited' }];
    const info = tenantInfo(engine, own, 3);
    assert.deepEqual(info, {
      Name: 'zun-gateway', Containers: 4, ContainersRunning: 2, ContainersPaused: 1, ContainersStopped: 1, Images: 3, Driver: '', SecurityOptions: [],
      ServerVersion: '20.10.24', OSType: 'linux', NCPU: 2, MemTotal: 24e9,
    });
  });

  it('info without a readable container list says 0 rather than the engine-wide counts', () => {
    const info = tenantInfo({ Containers: 57, Images: 12 }, 'not a list', 0);
    assert.equal(info.Containers, 0);
    assert.equal(info.Images, 0);
  });

  it('version says the oldest API the gateway serves (1.40), at the top and in the Engine component; newer minimums stay', () => {
    const version = tenantVersion({ Version: '20.10.24', MinAPIVersion: '1.12', Components: [{ Name: 'Engine', Details: { MinAPIVersion: '1.12' } }, { Name: 'containerd', Details: {} }] });
    assert.equal(version.MinAPIVersion, '1.40');
    assert.deepEqual(version.Components, [{ Name: 'Engine', Details: { MinAPIVersion: '1.40' } }, { Name: 'containerd', Details: {} }]);
    assert.equal(tenantVersion({ MinAPIVersion: '1.44' }).MinAPIVersion, '1.44');
  });
});
