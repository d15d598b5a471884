/** CloudFormation templates parsed as YAML, their short-form tags as long-form objects. */
import type { CollectionTag, ScalarTag, YAMLMap, YAMLSeq } from 'yaml';

/** CloudFormation short forms (!Ref, !Sub, !If …) as their long-form objects. */
export function cfnTags(): (ScalarTag | CollectionTag)[] {
  const fns = [
    'Ref',
    'Sub',
    'GetAtt',
    'If',
    'Equals',
    'Not',
    'And',
    'Or',
    'Condition',
    'Join',
    'Select',
    'Split',
    'FindInMap',
    'ImportValue',
    'Base64',
    'GetAZs',
    'Cidr',
  ];
  const tags: (ScalarTag | CollectionTag)[] = [];
  for (const fn of fns) {
    const key = fn === 'Ref' || fn === 'Condition' ? fn : `Fn::${fn}`;
    tags.push({
      tag: `!${fn}`,
      resolve: (value: string) => ({ [key]: fn === 'GetAtt' ? value.split('.') : value }),
    });
    tags.push({
      tag: `!${fn}`,
      collection: 'seq',
      resolve: (seq) => ({ [key]: (seq as YAMLSeq).toJSON() }),
    } as CollectionTag);
    tags.push({
      tag: `!${fn}`,
      collection: 'map',
      resolve: (map) => ({ [key]: (map as YAMLMap).toJSON() }),
    } as CollectionTag);
  }
  return tags;
}
