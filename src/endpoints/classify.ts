/**
 * Addresses that belong to no known endpoint: net/pvt for private ranges
 * (RFC 1918, RFC 6598 shared space, loopback, link-local, IPv6 ULA and
 * link-local), net/aws for the instance metadata service, net/pub for
 * everything else.
 */
import { BlockList, isIPv6 } from 'node:net';

const PRIVATE = new BlockList();
PRIVATE.addSubnet('10.0.0.0', 8, 'ipv4');
PRIVATE.addSubnet('172.16.0.0', 12, 'ipv4');
PRIVATE.addSubnet('192.168.0.0', 16, 'ipv4');
PRIVATE.addSubnet('100.64.0.0', 10, 'ipv4');
PRIVATE.addSubnet('127.0.0.0', 8, 'ipv4');
PRIVATE.addSubnet('169.254.0.0', 16, 'ipv4');
PRIVATE.addSubnet('fc00::', 7, 'ipv6');
PRIVATE.addSubnet('fe80::', 10, 'ipv6');
PRIVATE.addAddress('::1', 'ipv6');

const AWS = new BlockList();
AWS.addAddress('169.254.169.254', 'ipv4');
AWS.addAddress('fd00:ec2::254', 'ipv6');

export type NetClass = 'pvt' | 'aws' | 'pub';

export function classifyAddress(ip: string): NetClass {
  const family = isIPv6(ip) ? 'ipv6' : 'ipv4';
  try {
    if (AWS.check(ip, family)) return 'aws';
    if (PRIVATE.check(ip, family)) return 'pvt';
  } catch {
    return 'pvt'; // not an address at all: never claim it is the internet
  }
  return 'pub';
}
