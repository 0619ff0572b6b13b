// Stan's constrained types, a matrix, a complex quantity, transformed data from the RNG and a reject
data {
  int<lower=2> K;
  vector<lower=0>[K] alpha;
}
transformed data {
  real shift = normal_rng(0, 1);
}
parameters {
  simplex[K] p;
  ordered[2] o;
  cholesky_factor_corr[3] L;
  real<lower=0> s;
  matrix[2, 3] B;
}
model {
  if (s > 20) reject("s is too large: ", s);
  p ~ dirichlet(alpha);
  o ~ normal(0, 3);
  L ~ lkj_corr_cholesky(2);
  s ~ lognormal(0, 1);
  to_vector(B) ~ normal(0, 1);
}
generated quantities {
  real total = sum(p);
  real shifted = shift;
  complex z = to_complex(s, o[1]);
}
