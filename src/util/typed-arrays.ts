/** A copy of `a` with twice its length, the new half zero (growing a struct of arrays). */
export function doubled<T extends Float64Array | Int32Array>(a: T): T {
  const grown = new (a.constructor as new (length: number) => T)(a.length * 2);
  grown.set(a);
  return grown;
}
