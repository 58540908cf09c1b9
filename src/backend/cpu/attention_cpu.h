// The CPU backend's attention: the fp32 reference for every other implementation of AttnParams
// (attention/attention.h).
#pragma once

#include "attention/attention.h"

namespace starattn {

// OpenBLAS GEMMs and an exact softmax per row; q, out are float, k and v float, bf16 or (kv_type
// Fp8, Int8) rows of one byte a value with their scales. lse may be nullptr.
void attention_cpu(const AttnParams& p);

}  // namespace starattn
