import assert from 'node:assert/strict';
import { age, answerMessage, containerRows, dockerCommands, dockerHost, kubectlCommands, podRows, timeLeft, whoAmI } from '../../src/ui/format.js';

const NOW = Date.parse('2026-12-07T12:00:00Z');

describe("the page's view of the gateway's answers (src/ui/format.ts)", () => {
  it("ages like kubectl's AGE column", () => {
    assert.equal(age('2026-12-07T11:59:15Z', NOW), '45s');
    assert.equal(age('2026-12-07T11:48:00Z', NOW), '12m');
    assert.equal(age('2026-12-07T07:00:00Z', NOW), '5h');
    assert.equal(age('2026-12-04T12:00:00Z', NOW), '3d');
    assert.equal(age('2026-12-07T12:00:05Z', NOW), '0s');
    assert.equal(age(undefined, NOW), '-');
    assert.equal(age('yesterday', NOW), '-');
  });

  it('a PodList as name, phase, restarts (summed over containers) and age, by name; odd fields do not break it', () => {
    const rows = podRows(
      {
        kind: 'PodList',
        items: [
          { metadata: { name: 'web-2', creationTimestamp: '2026-12-07T11:00:00Z' }, status: { phase: 'Running', containerStatuses: [{ restartCount: 2 }, { restartCount: 1 }] } },
          { metadata: { name: 'job-1', creationTimestamp: '2026-12-07T11:59:30Z' }, status: {} },
          { metadata: 'not an object', status: { phase: 7 } },
          'not a pod',
        ],
      },
      NOW,
    );
    assert.deepEqual(rows, [
      { name: '-', phase: 'Unknown', restarts: 0, age: '-' },
      { name: 'job-1', phase: 'Unknown', restarts: 0, age: '30s' },
      { name: 'web-2', phase: 'Running', restarts: 3, age: '60m' },
    ]);
    assert.deepEqual(podRows({ kind: 'Status' }, NOW), []);
  });

  it("Docker's container list as name (without the slash), image and state, by name", () => {
    assert.deepEqual(
      containerRows([
        { Id: 'f00dcafe00112233', Names: ['/web'], Image: 'local/busybox:latest', State: 'running' },
        { Id: 'abcdef0123456789', Names: [], Image: 'x', State: 'exited' },
      ]),
      [
        { name: 'abcdef012345', image: 'x', state: 'exited' },
        { name: 'web', image: 'local/busybox:latest', state: 'running' },
      ],
    );
    assert.deepEqual(containerRows({ message: 'not a list' }), []);
  });

  it("reads /whoami: one unnamed cluster for /k8s, or the clusters the gateway lists; none without Kubernetes", () => {
    const base = {
      user: { name: 'alice', domain: { name: 'Default' } },
      project: { name: 'alpha', domain: { name: 'Default' } },
      roles: ['member', 'reader'],
      expiresAt: '2026-12-07T13:00:00.000Z',
      namespace: 'os-alpha',
    };
    assert.deepEqual(whoAmI({ ...base, coes: { k8s: { namespace: 'os-alpha' }, docker: {} } }), {
      user: 'alice',
      userDomain: 'Default',
      project: 'alpha',
      projectDomain: 'Default',
      roles: ['member', 'reader'],
      expiresAt: '2026-12-07T13:00:00.000Z',
      namespace: 'os-alpha',
      clusters: ["the gateway's cluster (/k8s)"],
    });
    assert.deepEqual(whoAmI({ ...base, coes: { k8s: { clusters: [{ name: 'east', server: 'x' }, 'west'] } } }).clusters, ['east', 'west']);
    assert.deepEqual(whoAmI({ ...base, coes: { docker: {} } }).clusters, []);
    assert.equal(whoAmI({}).namespace, undefined);
  });

  it('says how long a token has left', () => {
    assert.equal(timeLeft('2026-12-07T12:59:30Z', NOW), 'in 59 minutes');
    assert.equal(timeLeft('2026-12-07T12:01:00Z', NOW), 'in 1 minute');
    assert.equal(timeLeft('2026-12-07T18:00:00Z', NOW), 'in 6 hours');
    assert.equal(timeLeft('2026-12-07T11:00:00Z', NOW), 'expired');
  });

  it('takes the message of a Kubernetes Status, a Docker error and the gateway\'s own error alike', () => {
    assert.equal(answerMessage(403, { kind: 'Status', message: 'pods is forbidden' }), 'pods is forbidden');
    assert.equal(answerMessage(502, { message: 'engine unreachable' }), 'engine unreachable');
    assert.equal(answerMessage(503, { error: 503, message: 'Keystone is unavailable' }), 'Keystone is unavailable');
    assert.equal(answerMessage(500, undefined), 'HTTP 500');
  });

  it('gives the docker CLI tcp://host:port/docker (the port even when the URL has none) and TLS settings to match', () => {
    assert.equal(dockerHost('https://gw.example:8443'), 'tcp://gw.example:8443/docker');
    assert.equal(dockerHost('https://gw.example'), 'tcp://gw.example:443/docker');
    assert.equal(dockerHost('https://gw.example/prefix/'), 'tcp://gw.example:443/prefix/docker');
    assert.equal(dockerHost('https://[2001:db8::1]:8443'), 'tcp://[2001:db8::1]:8443/docker');
    const withCa = dockerCommands('https://gw.example:8443', true);
    assert.match(withCa, /^export DOCKER_HOST=tcp:\/\/gw\.example:8443\/docker DOCKER_CONFIG=~\/\.docker\/zun$/m);
    assert.match(withCa, /^export DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH=~\/\.docker\/zun$/m);
    assert.match(withCa, /^cp ~\/Downloads\/ca\.pem ~\/\.docker\/zun\/ca\.pem$/m);
    const systemTrust = dockerCommands('https://gw.example', false);
    assert.match(systemTrust, /^export DOCKER_TLS=1$/m);
    assert.doesNotMatch(systemTrust, /ca\.pem|DOCKER_TLS_VERIFY/);
  });

  it('fills the kubectl commands with the user, project and Keystone URL, quoted for the shell when they need it', () => {
    const text = kubectlCommands('http://127.0.0.1:5000/v3', { user: "o'neil", userDomain: 'Default', project: 'web team', projectDomain: 'Default' });
    assert.match(text, /^export OS_AUTH_URL=http:\/\/127\.0\.0\.1:5000\/v3$/m);
    assert.match(text, /^export OS_USERNAME='o'\\''neil' OS_USER_DOMAIN_NAME=Default$/m);
    assert.match(text, /^export OS_PROJECT_NAME='web team' OS_PROJECT_DOMAIN_NAME=Default$/m);
    assert.match(text, /^kubectl get pods$/m);
  });
});
