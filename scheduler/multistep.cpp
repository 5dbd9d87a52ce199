// The multistep samplers: UniPC (bh2) and DPM-Solver++ 2M, in the flow
// parametrisation alpha = 1 - sigma, lambda = ln(alpha / sigma).
//
// Upstream follows diffusers' UniPCMultistepScheduler.multistep_uni_{p,c}_bh_update
// and DPMSolverMultistepScheduler.{dpm_solver_first_order_update,
// multistep_dpm_solver_second_order_update} with predict_x0 / dpmsolver++ and
// flow sigmas (identical maths in Wan's fm_solvers_unipc.py / fm_solvers.py).
// Upstream forms D1 = (m1 - m0) / r and combines tensors term by term; here each
// update is expanded into one coefficient per tensor so it is a single lincomb.
//
// The limits (sigma = 1: lambda = -inf; sigma = 0: lambda = +inf) are left to
// IEEE arithmetic where it gives upstream's values (expm1(-inf) = -1, x / inf = 0,
// 0 / sigma = 0) and spelled out where it would not (the 2x2 solve of UniC).
#include <algorithm>
#include <cmath>

#include "kernels/ops.h"
#include "scheduler/scheduler.h"

namespace t2v {

// ---- UniPC ------------------------------------------------------------------------

void UniPCScheduler::reset() {
  x0_[0] = Tensor();
  x0_[1] = Tensor();
  last_sample_ = Tensor();
  last_order_ = 0;
  lower_order_nums_ = 0;
}

Tensor UniPCScheduler::step_impl(const Tensor& velocity, int i, const Tensor& sample) {
  const int n = num_steps();
  const double sigma_i = sigma(i);

  // 1. Convert: the model output of step i as a data prediction, from the
  //    uncorrected sample (upstream order).
  Tensor x0 = Tensor::empty(sample.shape(), DType::F32, sample.device());
  ops::lincomb(x0, {{1.0, &sample}, {-sigma_i, &velocity}});

  // 2. Corrector UniC from sigma_{i-1} to sigma_i with the order of the previous
  //    predictor: x_i = (s_i/s_{i-1}) last - a_i*phi*m0 - a_i*B*(rho0*D1 + rho1*(x0 - m0)),
  //    m0 = x0_{i-1}, m1 = x0_{i-2}, D1 = (m1 - m0)/rk.
  Tensor x = sample;
  if (i > 0 && last_sample_.defined()) {
    const double s_t = sigma_i, s_s0 = sigma(i - 1), a_t = 1.0 - s_t;
    const double lambda_s0 = flow_lambda(s_s0);
    const double h = flow_lambda(s_t) - lambda_s0;
    const double hh = -h;                 // predict_x0
    const double phi = std::expm1(hh);    // h*phi_1(h) = e^{-h} - 1
    const double b_h = phi;               // bh2
    double c_last = s_t / s_s0, c_m0 = -a_t * phi, c_m1 = 0.0, c_x0 = 0.0;
    if (last_order_ == 1) {
      // rho_c = 0.5 for order 1 (upstream's simplified solve)
      c_m0 += a_t * b_h * 0.5;
      c_x0 = -a_t * b_h * 0.5;
    } else {
      const double rk = (flow_lambda(sigma(i - 2)) - lambda_s0) / h;
      const double g1 = phi / hh - 1.0;  // h_phi_k for k = 1, then k = 2
      const double g2 = g1 / hh - 0.5;
      const double b1 = g1 / b_h, b2 = g2 * 2.0 / b_h;
      // [[1, 1], [rk, 1]] (rho0, rho1) = (b1, b2). At sigma_{i-2} = 1, rk = -inf:
      // rho0 -> 0, D1 -> 0 and rho1 -> b1.
      double rho0_over_rk = 0.0, rho1 = b1;
      if (std::isfinite(rk)) {
        const double rho0 = (b1 - b2) / (1.0 - rk);
        rho1 = b1 - rho0;
        rho0_over_rk = rho0 / rk;
      }
      c_m1 = -a_t * b_h * rho0_over_rk;
      c_m0 += a_t * b_h * (rho0_over_rk + rho1);
      c_x0 = -a_t * b_h * rho1;
    }
    x = Tensor::empty(sample.shape(), DType::F32, sample.device());
    ops::lincomb(x, {{c_last, &last_sample_}, {c_m0, &x0_[0]}, {c_m1, &x0_[1]}, {c_x0, &x0}});
  }

  // 3.-5. History, order (lower_order_final, then warm-up), corrected sample.
  x0_[1] = x0_[0];
  x0_[0] = x0;
  const int order = std::min({2, n - i, lower_order_nums_ + 1});
  last_sample_ = x;

  // 6. Predictor UniP from sigma_i to sigma_{i+1}:
  //    x_{i+1} = (s_{i+1}/s_i) x - a*phi*x0 - a*B*0.5*D1, D1 = (x0_{i-1} - x0)/rk.
  //    At sigma_{i+1} = 0 (last step, order 1) this is x0 exactly.
  const double s_t = sigma(i + 1), s_s0 = sigma_i, a_t = 1.0 - s_t;
  const double lambda_s0 = flow_lambda(s_s0);
  const double h = flow_lambda(s_t) - lambda_s0;
  const double phi = std::expm1(-h);
  const double b_h = phi;
  double c_x = s_t / s_s0, c_m0 = -a_t * phi, c_m1 = 0.0;
  if (order == 2) {
    const double rk = (flow_lambda(sigma(i - 1)) - lambda_s0) / h;
    const double c = a_t * b_h * 0.5 / rk;  // rho_p = 0.5; 0 when sigma_{i-1} = 1
    c_m1 = -c;
    c_m0 += c;
  }
  Tensor next = Tensor::empty(sample.shape(), DType::F32, sample.device());
  ops::lincomb(next, {{c_x, &x}, {c_m0, &x0_[0]}, {c_m1, &x0_[1]}});

  last_order_ = order;
  lower_order_nums_ = std::min(lower_order_nums_ + 1, 2);
  return next;
}

// ---- DPM-Solver++ 2M --------------------------------------------------------------

void DPMSolverScheduler::reset() {
  x0_prev_ = Tensor();
  lower_order_nums_ = 0;
}

Tensor DPMSolverScheduler::step_impl(const Tensor& velocity, int i, const Tensor& sample) {
  const int n = num_steps();
  const double sigma_i = sigma(i);
  Tensor x0 = Tensor::empty(sample.shape(), DType::F32, sample.device());
  ops::lincomb(x0, {{1.0, &sample}, {-sigma_i, &velocity}});

  // First order at the start (no history) and at the last step (final sigma 0);
  // second order (midpoint) otherwise:
  //   x' = (s_t/s_s0) x - a_t*E*m0 - 0.5*a_t*E*(m0 - m1)/r0,  E = e^{-h} - 1.
  // From sigma_i = 1 (lambda = -inf) the first order step is an Euler step; one
  // step later r0 = inf and the m1 term vanishes.
  const bool first_order = lower_order_nums_ < 1 || i == n - 1;
  const double s_t = sigma(i + 1), s_s0 = sigma_i, a_t = 1.0 - s_t;
  const double lambda_s0 = flow_lambda(s_s0);
  const double h = flow_lambda(s_t) - lambda_s0;
  const double e = std::exp(-h) - 1.0;
  double c_x = s_t / s_s0, c_m0 = -a_t * e, c_m1 = 0.0;
  if (!first_order) {
    const double r0 = (lambda_s0 - flow_lambda(sigma(i - 1))) / h;
    const double c = 0.5 * a_t * e / r0;
    c_m0 -= c;
    c_m1 = c;
  }
  Tensor next = Tensor::empty(sample.shape(), DType::F32, sample.device());
  ops::lincomb(next, {{c_x, &sample}, {c_m0, &x0}, {c_m1, &x0_prev_}});

  x0_prev_ = x0;
  lower_order_nums_ = std::min(lower_order_nums_ + 1, 2);
  return next;
}

}  // namespace t2v
