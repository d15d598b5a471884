import { describe, expect, it } from 'vitest';
import { errnoName, hasNetAdmin } from '../../src/capture/privilege.js';

describe('netlink privilege', () => {
  it('reads CAP_NET_ADMIN (bit 12) from the CapEff line of /proc/self/status', () => {
    expect(hasNetAdmin('Name:\tnode\nCapEff:\t000001ffffffffff\n')).toBe(true);
    expect(hasNetAdmin('CapEff:\t0000000000001000\n')).toBe(true);
    expect(hasNetAdmin('CapEff:\t000001ffffffefff\n')).toBe(false);
    expect(hasNetAdmin('CapEff:\t0000000000000000\n')).toBe(false);
    expect(hasNetAdmin('Name:\tnode\n')).toBeUndefined();
    expect(typeof hasNetAdmin()).toBe('boolean');
  });

  it('names errno numbers the kernel answers in netlink acks', () => {
    expect(errnoName(1)).toBe('EPERM');
    expect(errnoName(16)).toBe('EBUSY');
    expect(errnoName(95)).toBe('EOPNOTSUPP');
    expect(errnoName(4242)).toBe('E4242');
  });
});
