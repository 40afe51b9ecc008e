import { synthCustomerPlane } from '../synth';

test('customer plane: every template matches the snapshot (asset hashes stripped)', () => {
  expect(synthCustomerPlane().templates).toMatchSnapshot();
});
