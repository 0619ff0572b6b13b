// varinf's C interface to one compiled Stan model (C linkage, loaded from Python with ctypes).
//
// Compiled once per toolchain against stan::model::model_base (the virtual interface every stanc-generated
// model implements) and linked with one model's object file, which defines new_model(). Conventions:
//
//   - every array is row-major double: S points of D unconstrained values are u[s * D + d];
//   - log densities keep every normalizing constant (propto = false): the evidence means something and a
//     double-only evaluation (which would drop every term under propto) agrees with the gradient's value;
//   - a std::domain_error at one point (Stan's "reject", a scale <= 0, an ODE failure) is that point's
//     rejection: log density -inf, gradient NaN, the batch goes on; any other exception stops the call
//     and returns its message (never aborts the process);
//   - functions that can fail return 0 on success, else 1 with *err set to a message the caller frees with
//     vf_free_string().

#include <stan/io/empty_var_context.hpp>
#include <stan/io/json/json_data.hpp>
#include <stan/math/rev.hpp>
#include <stan/model/log_prob_grad.hpp>
#include <stan/model/model_base.hpp>
#include <stan/services/util/create_rng.hpp>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

// defined by the stanc-generated model file
stan::model::model_base& new_model(stan::io::var_context& data_context, unsigned int seed,
                                   std::ostream* msg_stream);

#define VF_API extern "C" __attribute__((visibility("default")))

static const char* const VF_GLUE_VERSION = "1";

struct vf_model {
  stan::model::model_base* model = nullptr;
  std::string name, layout, flat_names, unc_names;
  int n_unc = 0;       // unconstrained dimension
  int n_params = 0;    // constrained parameter scalars
  int n_tparams = 0;   // transformed-parameter scalars
  int n_gqs = 0;       // generated-quantity scalars
};

namespace {

char* copy_string(const std::string& s) {
  char* out = static_cast<char*>(std::malloc(s.size() + 1));
  if (out != nullptr) std::memcpy(out, s.c_str(), s.size() + 1);
  return out;
}

void set_error(char** err, const std::string& msg) {
  if (err != nullptr) *err = copy_string(msg);
}

// every thread that evaluates gradients needs its own autodiff stack (STAN_THREADS): ctypes calls come from
// whichever Python thread asks
void ensure_ad_stack() {
  static thread_local stan::math::ChainableStack thread_stack;
  (void)thread_stack;
}

std::string join(const std::vector<std::string>& v, char sep) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) out += sep;
    out += v[i];
  }
  return out;
}

// one line per variable: "<block> <name> <dim>...", block p (parameter), tp or gq, in write_array's order
std::string describe_layout(const stan::model::model_base& m) {
  std::vector<std::string> p, ptp, all;
  m.get_param_names(p, false, false);
  m.get_param_names(ptp, true, false);
  m.get_param_names(all, true, true);
  std::vector<std::vector<size_t>> dims;
  m.get_dims(dims, true, true);
  std::ostringstream out;
  for (size_t i = 0; i < all.size(); ++i) {
    const char* block = i < p.size() ? "p" : (i < ptp.size() ? "tp" : "gq");
    out << block << ' ' << all[i];
    if (i < dims.size())
      for (size_t d : dims[i]) out << ' ' << d;
    out << '\n';
  }
  return out.str();
}

double log_density_at(const stan::model::model_base& m, Eigen::VectorXd& u, bool jacobian, std::ostream* msgs) {
  return jacobian ? m.log_prob_jacobian(u, msgs) : m.log_prob(u, msgs);
}

}  // namespace

VF_API const char* vf_glue_version() { return VF_GLUE_VERSION; }

VF_API void vf_free_string(char* s) { std::free(s); }

VF_API vf_model* vf_new(const char* data_json, unsigned int seed, char** err) {
  vf_model* out = nullptr;
  std::ostringstream msgs;
  try {
    ensure_ad_stack();
    std::string text = data_json == nullptr ? std::string() : std::string(data_json);
    stan::model::model_base* m = nullptr;
    if (text.find_first_not_of(" \t\r\n") == std::string::npos) {
      stan::io::empty_var_context empty;
      m = &new_model(empty, seed, &msgs);
    } else {
      std::istringstream in(text);
      stan::json::json_data data(in);
      m = &new_model(data, seed, &msgs);
    }
    out = new vf_model();
    out->model = m;
    out->name = m->model_name();
    out->n_unc = static_cast<int>(m->num_params_r());
    // the name functions append to their argument: a fresh vector each time
    std::vector<std::string> p, ptp, all, unc;
    m->constrained_param_names(p, false, false);
    m->constrained_param_names(ptp, true, false);
    m->constrained_param_names(all, true, true);
    m->unconstrained_param_names(unc, false, false);
    out->n_params = static_cast<int>(p.size());
    out->n_tparams = static_cast<int>(ptp.size() - p.size());
    out->n_gqs = static_cast<int>(all.size() - ptp.size());
    out->flat_names = join(all, ',');
    out->unc_names = join(unc, ',');
    out->layout = describe_layout(*m);
    return out;
  } catch (const std::exception& e) {
    std::string extra = msgs.str();
    set_error(err, std::string(e.what()) + (extra.empty() ? "" : " (" + extra + ")"));
  } catch (...) {
    set_error(err, "unknown C++ exception while constructing the model");
  }
  if (out != nullptr) {
    delete out->model;
    delete out;
  }
  return nullptr;
}

VF_API void vf_delete(vf_model* m) {
  if (m == nullptr) return;
  delete m->model;
  delete m;
}

VF_API const char* vf_name(const vf_model* m) { return m->name.c_str(); }
VF_API const char* vf_layout(const vf_model* m) { return m->layout.c_str(); }
VF_API const char* vf_flat_names(const vf_model* m) { return m->flat_names.c_str(); }
VF_API const char* vf_unconstrained_names(const vf_model* m) { return m->unc_names.c_str(); }

// sizes[0..3] = unconstrained dimension, parameter, transformed-parameter, generated-quantity scalars
VF_API void vf_sizes(const vf_model* m, int* sizes) {
  sizes[0] = m->n_unc;
  sizes[1] = m->n_params;
  sizes[2] = m->n_tparams;
  sizes[3] = m->n_gqs;
}

// log densities at S points u (S x D), no gradient; strict: a domain error is an error (its message is
// what the caller wants, e.g. to explain a rejected initial point)
VF_API int vf_log_density(const vf_model* m, int S, const double* u, int jacobian, int strict, double* lp,
                          char** err) {
  const int D = m->n_unc;
  std::ostringstream msgs;
  Eigen::VectorXd x(D);
  int s = 0;
  try {
    for (; s < S; ++s) {
      for (int d = 0; d < D; ++d) x[d] = u[static_cast<size_t>(s) * D + d];
      try {
        lp[s] = log_density_at(*m->model, x, jacobian != 0, &msgs);
      } catch (const std::domain_error&) {
        if (strict) throw;
        lp[s] = -std::numeric_limits<double>::infinity();
      }
    }
    return 0;
  } catch (const std::exception& e) {
    set_error(err, std::string(e.what()) + " (at point " + std::to_string(s) + ")");
  } catch (...) {
    set_error(err, "unknown C++ exception in the log density");
  }
  return 1;
}

namespace {

int gradient_batch(const vf_model* m, int S, const double* u, int jacobian, double* lp, double* grad,
                   char** err) {
  const int D = m->n_unc;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::ostringstream msgs;
  Eigen::VectorXd x(D), g(D);
  int s = 0;
  try {
    ensure_ad_stack();
    for (; s < S; ++s) {
      const size_t off = static_cast<size_t>(s) * D;
      for (int d = 0; d < D; ++d) x[d] = u[off + d];
      try {
        lp[s] = jacobian ? stan::model::log_prob_grad<false, true>(*m->model, x, g, &msgs)
                         : stan::model::log_prob_grad<false, false>(*m->model, x, g, &msgs);
        for (int d = 0; d < D; ++d) grad[off + d] = g[d];
      } catch (const std::domain_error&) {
        lp[s] = -std::numeric_limits<double>::infinity();
        for (int d = 0; d < D; ++d) grad[off + d] = nan;
      }
    }
    return 0;
  } catch (const std::exception& e) {
    set_error(err, std::string(e.what()) + " (at point " + std::to_string(s) + ")");
  } catch (...) {
    set_error(err, "unknown C++ exception in the log density gradient");
  }
  return 1;
}

}  // namespace

// log densities and their gradients at S points u (S x D): lp (S), grad (S x D)
VF_API int vf_log_density_gradient(const vf_model* m, int S, const double* u, int jacobian, double* lp,
                                   double* grad, char** err) {
  return gradient_batch(m, S, u, jacobian, lp, grad, err);
}

// the same batch `reps` times, for timing the C++ side alone (benchmarks/stan_bridge_overhead.py)
VF_API int vf_log_density_gradient_repeat(const vf_model* m, int S, const double* u, int jacobian, double* lp,
                                          double* grad, int reps, char** err) {
  for (int r = 0; r < reps; ++r)
    if (gradient_batch(m, S, u, jacobian, lp, grad, err) != 0) return 1;
  return 0;
}

// constrained values of S points: out (S x K), K = parameters [+ transformed parameters [+ generated
// quantities]]; the generated quantities draw from one RNG seeded by `seed`, advanced point after point.
// A point whose transformed parameters or generated quantities fail (domain error) gets NaN there.
VF_API int vf_constrain(const vf_model* m, int S, const double* u, int include_tp, int include_gq,
                        unsigned int seed, double* out, char** err) {
  const int D = m->n_unc;
  const int K = m->n_params + (include_tp ? m->n_tparams : 0) + (include_gq ? m->n_gqs : 0);
  std::ostringstream msgs;
  stan::rng_t rng = stan::services::util::create_rng(seed, 1);
  Eigen::VectorXd x(D), z;
  int s = 0;
  try {
    for (; s < S; ++s) {
      for (int d = 0; d < D; ++d) x[d] = u[static_cast<size_t>(s) * D + d];
      double* row = out + static_cast<size_t>(s) * K;
      try {
        m->model->write_array(rng, x, z, include_tp != 0, include_gq != 0, &msgs);
        for (int k = 0; k < K; ++k) row[k] = k < z.size() ? z[k] : std::numeric_limits<double>::quiet_NaN();
      } catch (const std::domain_error&) {
        m->model->write_array(rng, x, z, false, false, &msgs);
        for (int k = 0; k < K; ++k) row[k] = k < m->n_params ? z[k] : std::numeric_limits<double>::quiet_NaN();
      }
    }
    return 0;
  } catch (const std::exception& e) {
    set_error(err, std::string(e.what()) + " (at point " + std::to_string(s) + ")");
  } catch (...) {
    set_error(err, "unknown C++ exception in write_array");
  }
  return 1;
}

// unconstrained values (S x D) of S points of constrained parameters z (S x n_params, Stan's flat order)
VF_API int vf_unconstrain(const vf_model* m, int S, const double* z, double* u, char** err) {
  const int D = m->n_unc, P = m->n_params;
  std::ostringstream msgs;
  Eigen::VectorXd c(P), x(D);
  int s = 0;
  try {
    for (; s < S; ++s) {
      for (int k = 0; k < P; ++k) c[k] = z[static_cast<size_t>(s) * P + k];
      m->model->unconstrain_array(c, x, &msgs);
      for (int d = 0; d < D; ++d) u[static_cast<size_t>(s) * D + d] = x[d];
    }
    return 0;
  } catch (const std::exception& e) {
    set_error(err, std::string(e.what()) + (S > 1 ? " (at point " + std::to_string(s) + ")" : ""));
  } catch (...) {
    set_error(err, "unknown C++ exception in unconstrain");
  }
  return 1;
}
