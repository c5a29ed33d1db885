//! Deterministic test data: a tiny xorshift generator and clustered unit vectors that look
//! like sentence embeddings (random unit vectors would make recall meaningless). Also compiled
//! into `benches/index.rs`, by path.

/// xorshift64* with Box–Muller normals; fixed seeds keep tests reproducible.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in (0, 1].
    pub fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    pub fn gaussian(&mut self) -> f32 {
        let (u1, u2) = (self.uniform(), self.uniform());
        ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
    }
}

pub fn normalize(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= n);
}

pub fn random_unit(rng: &mut Rng, dim: usize) -> Vec<f32> {
    let mut v: Vec<f32> = (0..dim).map(|_| rng.gaussian()).collect();
    normalize(&mut v);
    v
}

/// `noise` relative to a unit centre: with per-coordinate sigma = noise / sqrt(dim) the
/// cosine between a point and its centre is about 1 / sqrt(1 + noise^2).
pub fn perturb(rng: &mut Rng, v: &[f32], noise: f32) -> Vec<f32> {
    let sigma = noise / (v.len() as f32).sqrt();
    let mut p: Vec<f32> = v.iter().map(|x| x + sigma * rng.gaussian()).collect();
    normalize(&mut p);
    p
}

/// `n` unit vectors in `dim` dimensions around `clusters` random centres, row-major.
/// noise 1.0 gives point–centre cosine ≈ 0.7 and intra-cluster cosine ≈ 0.5.
pub fn clustered(seed: u64, n: usize, dim: usize, clusters: usize, noise: f32) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let centres: Vec<Vec<f32>> = (0..clusters).map(|_| random_unit(&mut rng, dim)).collect();
    let mut out = Vec::with_capacity(n * dim);
    for _ in 0..n {
        let c = &centres[rng.below(clusters)];
        out.extend(perturb(&mut rng, c, noise));
    }
    out
}
