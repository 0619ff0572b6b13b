// Beta-Bernoulli: posterior Beta(2 + s, 2 + N - s) and log p(y) = log B(2 + s, 2 + N - s) - log B(2, 2)
data {
  int<lower=0> N;
  array[N] int<lower=0, upper=1> y;
}
parameters {
  real<lower=0, upper=1> theta;
}
model {
  theta ~ beta(2, 2);
  y ~ bernoulli(theta);
}
generated quantities {
  array[N] int y_rep = bernoulli_rng(rep_vector(theta, N));
  vector[N] log_lik;
  for (n in 1:N) log_lik[n] = bernoulli_lpmf(y[n] | theta);
}
