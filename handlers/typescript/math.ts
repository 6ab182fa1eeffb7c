/**
 * The seed's arithmetic workflows with native handlers: linear, diamond,
 * complex DAG and hierarchical tree. The Python, Ruby and bridge-TypeScript
 * handlers do exactly the same arithmetic, so that differences between
 * runtimes are the bridge's, nothing else.
 */
import { defineHandlers, PermanentError, type Step } from '../../src/worker/sdk.js';
import { fromBig, onlyParent, productOfParents, toBig } from './numbers.js';

function evenNumber(step: Step): bigint {
  const n = step.context?.even_number;
  if (typeof n !== 'number' || !Number.isInteger(n) || n % 2 !== 0) {
    throw new PermanentError(`context.even_number must be an even integer, got ${JSON.stringify(n)}`);
  }
  return toBig(n, 'context.even_number');
}

/** Square the parent's value, or context.even_number for a root step. */
const square = (step: Step) => {
  const x = Object.keys(step.dependency_results).length === 0 ? evenNumber(step) : onlyParent(step.dependency_results, step.step_name);
  return fromBig(x * x);
};

/** Multiply every parent's value, then square. */
const multiplySquare = (step: Step) => {
  const p = productOfParents(step.dependency_results, step.step_name);
  return fromBig(p * p);
};

export const handlers = defineHandlers({
  'linear.square': square,
  'diamond.start': square,
  'diamond.branch': square,
  'diamond.end': multiplySquare,
  'complex.init': square,
  'complex.square_parent': square,
  'complex.multiply_square': multiplySquare,
  'tree.root': square,
  'tree.square_parent': square,
  'tree.multiply_square': multiplySquare,
});
