// The CPU backend's attention: the fp32 reference for every other implementation of AttnParams
// (attention/attention.h).
#pragma once

#include "attention/attention.h"

namespace starattn {

// OpenBLAS GEMMs and an exact softmax per row; q, k, v, out are float. lse may be nullptr.
void attention_cpu(const AttnParams& p);

}  // namespace starattn
